// The Flex Consumption (FC1, Linux) function app that runs Platform as an Azure Functions custom handler:
// the Functions host owns the triggers and scaling and forwards each invocation to the ASP.NET Core server
// (host.json: customHandler, enableProxyingHttpRequest). Storage is reached by service URI + managed identity;
// no setting holds a key or a connection string with a key.

@description('Name of the function app (also its default host name).')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region.')
param location string

@description('Tags for the plan and the app.')
param tags object

@description('Name azd uses to find the app it deploys to (azure.yaml services.<name>).')
param serviceName string = 'api'

@description('Resource ID of the user-assigned identity the app runs as.')
param identityId string

@description('Client ID of that identity.')
param identityClientId string

@description('Blob service URI of the storage account.')
param blobEndpoint string

@description('Queue service URI of the storage account.')
param queueEndpoint string

@description('Table service URI of the storage account.')
param tableEndpoint string

@description('URL of the blob container the deployment package is uploaded to.')
param deploymentContainerUrl string

@description('Name of the Application Insights component in this resource group.')
param applicationInsightsName string

@description('Key Vault URI holding token-signing-key and data-encryption-key.')
param keyVaultUri string

@description('Most instances the app scales out to. Bounds cost and the load put on storage.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory of each instance in MB (CPU grows with it).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Always-ready instances of the HTTP group: they keep the in-process durable worker polling the task hub.')
@minValue(1)
@maxValue(20)
param alwaysReadyInstances int = 1

@description('External base URL used in links (mail, webhook receiver URLs). Empty: the app\'s https default host name.')
param publicBaseUrl string = ''

resource plan 'Microsoft.Web/serverfarms@2024-11-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource site 'Microsoft.Web/sites@2024-11-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        // The Functions scale controller watches the queues of declared triggers only; the task hub's control and
        // work-item queues belong to the in-process durable worker, which it cannot see. An always-ready instance
        // keeps a worker polling them, so a job started through the API (or by a timer) always has a worker.
        alwaysReady: [
          {
            name: 'http'
            instanceCount: alwaysReadyInstances
          }
        ]
      }
      // Custom handlers run on Flex Consumption as runtime "custom" (the Functions stack API lists name "custom",
      // version "1.0" for SKU FC1). That image brings no .NET, so the package carries the .NET 10 runtime itself
      // (self-contained linux-x64 publish) and host.json starts the app's own executable.
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }
}

// A separate config resource, because the public URL needs the host name the site gets when it is created.
// It replaces the whole set on every provision: add lasting settings here, not in the portal.
resource appSettings 'Microsoft.Web/sites/config@2024-11-01' = {
  parent: site
  name: 'appsettings'
  properties: {
    // The Functions host and the app read the same names (identity-based connection: service URIs, no keys).
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    AzureWebJobsStorage__blobServiceUri: blobEndpoint
    AzureWebJobsStorage__queueServiceUri: queueEndpoint
    AzureWebJobsStorage__tableServiceUri: tableEndpoint
    // DefaultAzureCredential (Key Vault and storage clients in the app) picks the user-assigned identity from this.
    AZURE_CLIENT_ID: identityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    // On Azure the Functions host fires timers and queue messages; the in-process runners stay off.
    Platform__Triggers__Standalone: 'false'
    Platform__KeyVault__Uri: keyVaultUri
    Platform__PublicBaseUrl: empty(publicBaseUrl) ? 'https://${site.properties.defaultHostName}' : publicBaseUrl
  }
}

// Deployments (azd, az functionapp deploy) authenticate with Microsoft Entra ID; no publishing passwords.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

@description('Name of the function app.')
output name string = site.name

@description('Default host name of the function app.')
output defaultHostName string = site.properties.defaultHostName
